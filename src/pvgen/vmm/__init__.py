"""pvgen.vmm"""
