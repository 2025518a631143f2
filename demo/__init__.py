"""Demo data: `manage.py seed_demo` writes two realistic tenants through every app's services."""
