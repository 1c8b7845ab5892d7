-- Distinct ~300 px JPEG variants of one stored image: every request is a cache miss
-- (4500 distinct (w, q) pairs per image id; peers.sh gives every run its own id).
-- args: image id
local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
end
function init(args)
  id = args[1]
  counter = 0
  stride = tonumber(args[2]) or 64
end
function request()
  local n = counter * stride + tid
  counter = counter + 1
  local w = 250 + (n % 100)
  local q = 50 + (math.floor(n / 100) % 45)
  return wrk.format("GET", "/image/" .. id .. ".jpg?w=" .. w .. "&q=" .. q)
end
