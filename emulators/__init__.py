"""Emulated kiosks: real WebRTC calls (aiortc) across a userspace emulation of an ADSL line.

* :mod:`emulators.config` - :class:`~emulators.config.CallConfig`, one frozen, validated call, and its
  builders from the options of ``twin emulate``;
* :mod:`emulators.call` - :class:`~emulators.call.CallSession`, one call from set-up to result, and
  :func:`~emulators.call.run_emulated_call`;
* :mod:`emulators.clocks` - the clock a call runs on, chosen once: real or virtual;
* :mod:`emulators.results` - :class:`~emulators.results.CallResult` and its typed parts;
  :mod:`emulators.output` writes it (``result.json``, ``timeseries.png``);
* :mod:`emulators.media`, :mod:`emulators.metrics` - what the ends send, and what the receivers measure;
* :mod:`emulators.relay`, :mod:`emulators.virtual_time` - the line between the peers, on sockets or in
  virtual time; :mod:`emulators.encoder_setup` and :mod:`emulators.coding_worker` - aiortc's encoders;
* :mod:`emulators.chain` - good frames vs frames from a broken reference chain, and the receiver's
  keyframe request after a long gap; :mod:`emulators.causes` - why a call ended;
* :mod:`emulators.evidence` - pcap files and the per-packet CSV; :mod:`emulators.interrupts` - the
  signal policy of ``twin emulate``; :mod:`emulators.group` - many concurrent calls (``--calls``);
* :mod:`emulators.calibrate`, :mod:`emulators.agreement`, :mod:`emulators.probe` - sweeps and checks built
  on calls;
* :mod:`emulators.signalling` - the in-process signalling server and service directory (the generation
  rule on the call path); :mod:`emulators.cosim` - a SimPy environment stepped on the asyncio loop;
  :mod:`emulators.hybrid` - a twin replication whose interviews at live kiosks are emulated calls.
"""
