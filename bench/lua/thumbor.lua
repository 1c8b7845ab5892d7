-- thumbor's counterpart of cold.lua: /unsafe/{w}x0/filters:quality({q})/{file} with the same
-- 4500 (w, q) pairs. thumbor runs with no storage and no result storage, so it decodes on
-- every request anyway; distinct URLs make sure no cache anywhere can answer.
-- args: file name under FILE_LOADER_ROOT_PATH, stride (= wrk threads)
local nthreads = 0
function setup(thread)
  thread:set("tid", nthreads)
  nthreads = nthreads + 1
end
function init(args)
  file = args[1]
  counter = 0
  stride = tonumber(args[2]) or 64
end
function request()
  local n = counter * stride + tid
  counter = counter + 1
  local k = n % 4500
  local w = 250 + (k % 100)
  local q = 50 + (math.floor(k / 100) % 45)
  return wrk.format("GET", "/unsafe/" .. w .. "x0/filters:quality(" .. q .. ")/" .. file)
end
