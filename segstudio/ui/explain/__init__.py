"""The "Inside the model" dock: one model and image shared by its views (activations, branch
grid, receptive fields, context), their colour maps and their figure export."""
