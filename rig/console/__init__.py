"""The surgeon's console: a web page served by `rig console`, bridged to the rig's MQTT API
(docs/console.md)."""
