// Hash routes, so the server only ever serves one page:
//   #/                       streams
//   #/stream/<name>          one stream
//   #/stream/<name>/records  live record viewer

import { streamsPage } from './streams.js';
import { streamPage } from './stream.js';
import { viewerPage } from './viewer.js';

const view = document.getElementById('view');
document.getElementById('endpoint').textContent = `--endpoint-url ${location.origin}`;
let unmount = () => {};

function route() {
  unmount();
  const path = decodeURIComponent(location.hash.replace(/^#/, '')) || '/';
  let m;
  let stop;
  if ((m = /^\/stream\/(.+)\/records$/.exec(path))) stop = viewerPage(view, m[1]);
  else if ((m = /^\/stream\/(.+)$/.exec(path))) stop = streamPage(view, m[1]);
  else stop = streamsPage(view);
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('active', a.getAttribute('href') === '#/' && path === '/');
  }
  document.title = m ? `${m[1]} · runnel` : 'Streams · runnel';
  unmount = typeof stop === 'function' ? stop : () => {};
  window.scrollTo(0, 0);
}

window.addEventListener('hashchange', route);
route();
