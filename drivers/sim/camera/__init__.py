"""The simulated scope camera: the view from the tip of a fibrescope in a milk duct."""

from drivers.sim.camera.bundle import BundleParams, FibreBundle
from drivers.sim.camera.scene import DuctScene, DuctSceneParams, PapillomaInView, View

__all__ = ["BundleParams", "DuctScene", "DuctSceneParams", "FibreBundle", "PapillomaInView", "View"]
