"""QR entry points (扫码入口): a printed poster whose QR code opens the citizen page preset to one service.

- store.py    the entry_points table kept by its rules (slug, target = a hotline number + menu option,
              or the option that leads to an organisation's queue, e.g. a mediation centre's)
- poster.py   the printable poster (PNG and A4 PDF): QR code of the entry URL, title, instructions in Chinese
"""
