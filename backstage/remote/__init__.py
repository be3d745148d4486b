"""Programs that run on a host: standard-library Python only, sent or installed by the commands
layer (:mod:`backstage.commands`, :mod:`backstage.venues.commands`) and never imported here."""
