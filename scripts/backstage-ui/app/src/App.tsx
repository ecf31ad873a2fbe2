// The smallest real Backstage app for portico's manual UI check: the catalog, and the sign-in page
// portico answers (ProxiedSignInPage with provider `portico`: /backstage/api/auth/portico/refresh).
import { Navigate, Route } from 'react-router-dom';
import {
  CatalogEntityPage,
  CatalogIndexPage,
  catalogPlugin,
} from '@backstage/plugin-catalog';
import { EntityAboutCard } from '@backstage/plugin-catalog';
import {
  AlertDisplay,
  OAuthRequestDialog,
  ProxiedSignInPage,
} from '@backstage/core-components';
import { createApp } from '@backstage/app-defaults';
import { AppRouter, FlatRoutes } from '@backstage/core-app-api';

const app = createApp({
  plugins: [catalogPlugin],
  components: {
    SignInPage: props => <ProxiedSignInPage {...props} provider="portico" />,
  },
});

export default app.createRoot(
  <>
    <AlertDisplay />
    <OAuthRequestDialog />
    <AppRouter>
      <FlatRoutes>
        <Route path="/" element={<Navigate to="catalog" />} />
        <Route
          path="/catalog"
          element={<CatalogIndexPage initiallySelectedFilter="all" />}
        />
        <Route
          path="/catalog/:namespace/:kind/:name"
          element={<CatalogEntityPage />}
        >
          <EntityAboutCard />
        </Route>
      </FlatRoutes>
    </AppRouter>
  </>,
);
