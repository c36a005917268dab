"""Suite files: schema (schema.py), YAML with line numbers (yaml_nodes.py), loading (loader.py),
and the semantic checks that run before the first cell (check.py)."""
