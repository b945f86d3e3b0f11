import { mount } from 'svelte';
import App from './App.svelte';
import './app.css';
import { app } from './lib/stores/app.svelte';

app.init();
mount(App, { target: document.getElementById('app')! });
