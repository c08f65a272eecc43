"""pvgen.toolchain"""
