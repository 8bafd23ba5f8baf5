"""Video items: the video panel (predict frames, overlay clips) and labels carried or propagated
from frame to frame."""
