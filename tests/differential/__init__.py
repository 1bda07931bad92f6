"""Differential testing against torch.load: container mutants, a torch oracle in a sandbox, a judge.

The modules, smallest first:

- :mod:`.pickles` - hand-built payload fragments and a pickle re-emitter (opcode level);
- :mod:`.zipfmt` - a zip writer with every knob the mutants need (no :mod:`zipfile`);
- :mod:`.seeds` - the clean seed checkpoints (torch writes them, in the oracle worker);
- :mod:`.mutants_zip`, :mod:`.mutants_legacy`, :mod:`.mutants_tar`, :mod:`.mutants_poly` - the classes;
- :mod:`.generate` - a deterministic stream of mutants from an integer seed;
- :mod:`.oracle` / :mod:`.oracle_worker` - torch in a long-lived worker that forks one child per load;
- :mod:`.ours` - the only module that talks to convnextpose_audit;
- :mod:`.judge` - the rules, and :mod:`.run` - one loop shared by the test and ``fuzz/differential.py``.
"""
