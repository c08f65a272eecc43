"""pvgen.asm"""
