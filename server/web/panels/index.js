// The console's panels and where the shell (shell.js) shows each. A panel module keeps the
// contract in app.js ({id, title, slot, mount(root, app)}); its place is said here:
//   views  the route views it is shown in: 'signin' (nobody signed in), 'account', 'home'
//          (the project list), 'admin', 'drawer' (the developer drawer), or a project view
//          (router.js PROJECT_VIEWS: #/p/<id>/<view>)
//   nav    for a project view: its label in the project's navigation, in this order
// A later feature adds one module under panels/ and one line here.
import auth from './auth.js';
import activity from './activity.js';
import projects from './projects.js';
import tables from './tables.js';
import pcap from './pcap.js';
import chat from './chat.js';
import files from './files.js';
import imports from './imports.js';
import members from './members.js';
import admin from './admin.js';

export default [
  { panel: auth, views: ['signin', 'account'] },
  { panel: projects, views: ['home'] },
  { panel: tables, views: ['tables'], nav: 'Tables' },
  { panel: pcap, views: ['captures'], nav: 'Captures' },
  { panel: chat, views: ['chat'], nav: 'Chat' },
  { panel: files, views: ['files'], nav: 'Files' },
  { panel: imports, views: ['imports'], nav: 'Imports' },
  { panel: members, views: ['members'], nav: 'Members' },
  { panel: admin, views: ['admin'] },
  { panel: activity, views: ['drawer'] },
];
