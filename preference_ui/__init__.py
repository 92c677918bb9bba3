"""preference_ui package."""
