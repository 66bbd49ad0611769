"""The trader's pages: views, forms, per-page selectors (reads) and presenters (shaping)."""
