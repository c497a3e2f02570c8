"""Local argilla-server for tests and the demo: launcher, our SQL search engine, manager.

sql_search_engine.py and launch.py run inside the argilla-server virtualenv; manager.py runs in
the workbench and uses only the standard library."""
