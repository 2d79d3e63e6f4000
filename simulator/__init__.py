"""The community simulator: synthetic communities in the data contract, with their true odds.

A tool beside the pipelines, not a layer of the product: it may use ``features`` (the contract
tables) and ``serving`` (the outreach assignments its managers log), and ``features``,
``models`` and ``serving`` never import it. The command line (``corecast simulate``,
``corecast demo``), the flows and the benchmarks use it; training gets its oracle only as an
injected :class:`models.train.Oracle` (:func:`simulator.oracle.oracle_for`).

- :mod:`simulator.community`: :func:`~simulator.community.simulate_community` and the files
  (:func:`~simulator.community.write_simulation`, :func:`~simulator.community.read_latent`);
- :mod:`simulator.model`: the config and the weekly hazards (the equations);
- :mod:`simulator.truth`: the oracle, each member's true probabilities at a date;
- :mod:`simulator.posterior`: the oracle with the traits inferred from the tables;
- :mod:`simulator.outreach`: community managers who call the members they flag;
- :mod:`simulator.oracle`: the oracle in the form training takes it;
- :mod:`simulator.cities`: the chapters' cities.
"""
