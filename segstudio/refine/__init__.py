"""Smart corrections of label maps: dense CRF, GrabCut, morphology."""
