"""The ``kb`` command line: a thin layer over the Python API (``from kb import KnowledgeBase``).

Command modules import only click at module level; everything heavy is imported inside the
command that needs it, so ``kb --help`` starts fast.
"""
