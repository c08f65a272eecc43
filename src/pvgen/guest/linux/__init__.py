"""pvgen.guest.linux: the environment in which real Linux 6.1 driver objects run inside the CPL3 guest harness."""
