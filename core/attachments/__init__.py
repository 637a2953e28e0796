"""Core's attachments service: files kept with an order (the customer's original order, a
contract, a signed delivery note, an acceptance report), checked by content, stored by hash.

Call :mod:`core.attachments.service` from code; :mod:`core.attachments.sniff` tells what
a file is; the screens, API and order-page panel are contributed by
:mod:`core.attachments.hooks`.
"""
