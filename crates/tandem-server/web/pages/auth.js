// Logging in and signing up.
import { api } from '../api.js';
import { currentUser, go, mount, onSubmit, setCurrentUser, toast } from '../shell.js';

export async function renderLogin() {
  const form = mount('tpl-login').querySelector('form');
  onSubmit(form, async (data) => {
    setCurrentUser(await api('POST', '/api/auth/login', { email: data.get('email'), password: data.get('password') }));
    go('profile');
  });
}

export async function renderSignup() {
  const form = mount('tpl-signup').querySelector('form');
  onSubmit(form, async (data) => {
    setCurrentUser(await api('POST', '/api/auth/register', {
      email: data.get('email'), password: data.get('password'), display_name: data.get('display_name'),
    }));
    toast(`Welcome to Tandem, ${currentUser().display_name}!`);
    go('profile');
  });
}
