"""pvgen.devices"""
