"""Face detectors and reconstruction backends (import the submodules; nothing heavy is loaded here).

* :mod:`faceanon.models.base` -- the abstract ``FaceDetector`` and ``ReconstructionBackend``
* :mod:`faceanon.models.centerface` -- CenterFace (OpenCV dnn)
* :mod:`faceanon.models.lite` -- the lite backend: mb05 regressor (:mod:`~faceanon.models.mb05`) +
  no-neck BFM (:mod:`~faceanon.models.bfm`, part labels in :mod:`~faceanon.models.lite_labels`)
* :mod:`faceanon.models.labels` -- visible part-label map of any ``FaceFit``
* :mod:`faceanon.models.loader` -- cached loading from the asset store (the only store user)
"""
