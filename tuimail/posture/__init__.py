"""A mail domain's posture: what its DNS publishes and what its MX hosts say, judged.

``tuimail check DOMAIN`` and the monitor's posture panel run
:func:`tuimail.posture.check.check_domain`, which reads the records (MX,
PTR, SPF, DMARC, MTA-STS, TLS-RPT, TLSA, DKIM) through dnspython and probes
each MX address with tuimail/probe.py; :mod:`tuimail.posture.report` holds
the result as data (an :class:`~tuimail.posture.report.Item` per thing
checked, each with a Nagios state and a sentence per problem), and the faces
word it. The parsers of the records are in :mod:`tuimail.posture.records`,
the TLSA matching in :mod:`tuimail.posture.tlsa`.
"""
