"""Facts layer: what the host helper is asked to look at, and how its answers are read, typed.

:mod:`~backstage.facts.observed` is the probe every operation starts with;
:mod:`~backstage.facts.live` judges whether an act's live release serves;
:mod:`~backstage.facts.status` is ``status``'s question and answer. Nothing outside this
package digs into the helper's JSON.
"""
