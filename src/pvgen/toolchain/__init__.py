"""Build integration: pvgen-as (a drop-in GNU as), the gcc -B launcher, Linux sources and Kbuild recipes."""
