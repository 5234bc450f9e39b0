"""The exactly-once engine: every document the flows send to AccountsIQ goes through one state
machine, kept in the store (`aiq_flows.store.outbox`):

    planned -> sending (a claim with a lease) -> posted -> written_back
                        \\-> failed (refused; resent only when its source changes)
                        \\-> unknown (sent, answer lost: AIQ is read before any resend)
                        \\-> planned (nothing was sent: AIQ out of reach)

- `delivery`: single and bulk documents (invoices, journals): `BulkSender`, and `ExactlyOnceSender`
  for documents sent one call each (a bulk of one);
- `item_invoices`: the life of an item invoice in AIQ (none -> draft -> posted, a draft cancelled),
  read back at every step; used by the nightly sync's item invoices and by both legs of a pair;
- `pairing`: two legs (back-to-back, intercompany) both saved as drafts before either is posted,
  a half pair completed by the next run, a withdrawn pair unwound;
- `port`: the AIQ calls the engine makes (`AiqPort`): the live gateway, or `fake.FakeAiq`, on which
  tests/test_delivery.py and tests/test_pairing.py drive every transition in milliseconds.
"""
