-- Run once by the postgres image on an empty volume: Argilla's own database beside ours.
CREATE DATABASE argilla;
