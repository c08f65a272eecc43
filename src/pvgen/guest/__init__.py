"""pvgen.guest"""
