"""The lab: notebooks run through papermill, batch sweeps, studies and the demo.

This is the front-door side of the workbench, above the core: it executes the parameterized
notebooks (whose cells call `workbench.steps` and draw with `widgets`), so the core never imports
it. `workbench.cli` sits on top of both.
"""
