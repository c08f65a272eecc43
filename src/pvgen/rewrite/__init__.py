"""pvgen.rewrite: the assembler preprocessor that turns port-I/O sites into runtime thunk calls."""

from pvgen.rewrite.core import RewriteResult, may_have_sites, rewrite_text

__all__ = ["RewriteResult", "may_have_sites", "rewrite_text"]
