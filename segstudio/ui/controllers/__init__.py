"""The window's behaviour, one small class each: model runs, smart tools and seed growing,
review, recent files, opening items and saving labels. The main window creates and wires them."""
