"""Test-session settings that must precede the first import of scipy."""
import os

# scikit-learn's check_array_api_input runs only when scipy is in array-API mode; set it
# before anything imports scipy so that the check runs instead of skipping.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
