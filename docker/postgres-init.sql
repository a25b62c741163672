-- One database per service: the coordinator's log and each bank's own data.
CREATE DATABASE coordinator;
CREATE DATABASE bank_a;
CREATE DATABASE bank_b;
