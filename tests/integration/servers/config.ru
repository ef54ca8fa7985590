# A minimal Rack application for Puma (tests/integration/test_real_servers.py).
# Stock behaviour only: no draining logic of its own.
run lambda { |_env| [200, { "Content-Type" => "text/plain" }, ["hello from pid #{Process.pid}\n"]] }
