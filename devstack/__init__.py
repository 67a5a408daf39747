"""Development tooling, kept out of the product: the ``fastchat_api`` wheel does not ship it.

* :mod:`devstack.models`: a tiny random Llama that FastChat's real worker serves on a CPU.
* :mod:`devstack.processes`: child processes on loopback with log files, started and stopped
  as one set.
* :mod:`devstack.stack`: FastChat's controller, workers, stand-ins and API servers as such
  children.
* :mod:`devstack.standin`: the scripted FastChat controller + worker of the tests and the
  benchmark, in-process or as a process.
* ``python -m devstack``: a whole local stack (controller, worker, gateway) until Ctrl-C.
"""
