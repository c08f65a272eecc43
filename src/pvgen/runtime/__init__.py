"""pvgen.runtime"""
