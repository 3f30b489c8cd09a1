"""Built-in pretraining presets (YAML); a package so that non-editable installs ship them."""
