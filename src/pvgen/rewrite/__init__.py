"""pvgen.rewrite"""
