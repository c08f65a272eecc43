"""pvgen.bench"""
