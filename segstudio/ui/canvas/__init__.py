"""What the canvas shows: the view widget, the overlay renderer, the document on screen, the
window/level control and the prediction layers drawn over the labels."""
