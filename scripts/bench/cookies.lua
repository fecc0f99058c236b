-- wrk: GET with a session cookie picked at random from $BENCH_COOKIES (one value per line),
-- so lookups touch the whole sessions index rather than one cached row.
local cookies = {}
local name = os.getenv("BENCH_COOKIE_NAME") or "session"

function init(args)
  for line in io.lines(os.getenv("BENCH_COOKIES")) do
    cookies[#cookies + 1] = name .. "=" .. line
  end
  math.randomseed(os.time() + tonumber(tostring(cookies):match("0x(%x+)") or "0", 16) % 1000003)
end

function request()
  return wrk.format("GET", nil, { ["Cookie"] = cookies[math.random(#cookies)] })
end
