-- Distinct ~300 px JPEG variants of stored images: every request is a cache miss.
-- 4500 distinct (w, q) pairs per image id; after those the next id of the list is used, so
-- a run has 4500 x (number of ids) distinct variants (peers.sh uploads enough ids for
-- the run's length and notes it if a run asked for more requests than that).
-- args: comma-separated image ids, stride (= wrk threads)
local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
end
function init(args)
  ids = {}
  for id in string.gmatch(args[1], "[^,]+") do
    ids[#ids + 1] = id
  end
  counter = 0
  stride = tonumber(args[2]) or 64
end
function request()
  local n = counter * stride + tid
  counter = counter + 1
  local id = ids[(math.floor(n / 4500) % #ids) + 1]
  local k = n % 4500
  local w = 250 + (k % 100)
  local q = 50 + (math.floor(k / 100) % 45)
  return wrk.format("GET", "/image/" .. id .. ".jpg?w=" .. w .. "&q=" .. q)
end
