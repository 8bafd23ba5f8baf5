"""Looking inside networks: branch probes, receptive fields, class activation maps."""
