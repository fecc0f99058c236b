-- wrk: successful sign-ins rotating over the users in $BENCH_BODIES (one form body per line),
-- each thread from its own offset, so no username has parallel attempts in flight (those
-- would count as parallel guesses and trip the fail-lock, as docs/behaviour.md §4 wants).
local bodies = {}
local i = 0
local threads = 0

function setup(thread)
  thread:set("offset", threads * 997)
  threads = threads + 1
end

function init(args)
  local token = os.getenv("BENCH_CSRF_TOKEN")
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    bodies[#bodies + 1] = line .. "&csrf_token=" .. token
  end
  i = (offset or 0) % #bodies
end

function request()
  i = i % #bodies + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = os.getenv("BENCH_COOKIE"),
  }, bodies[i])
end
