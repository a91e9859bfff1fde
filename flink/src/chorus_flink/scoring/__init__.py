"""Pure domain logic the jobs call: scores, lexicons, rules.

Nothing here imports pyflink, so the root environment tests it without a cluster; the jobs
wrap these functions in Python UDFs or turn their tables into SQL text.
"""
