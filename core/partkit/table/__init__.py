"""The partition-table codec: names, model, CSV and binary formats, layout, validation."""
