package dev.aoepack.testing;

import java.io.IOException;
import java.security.AlgorithmParameters;
import java.security.AlgorithmParametersSpi;
import java.security.InvalidKeyException;
import java.security.InvalidParameterException;
import java.security.Key;
import java.security.KeyFactory;
import java.security.KeyFactorySpi;
import java.security.NoSuchAlgorithmException;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.Security;
import java.security.Signature;
import java.security.SignatureException;
import java.security.SignatureSpi;
import java.security.spec.AlgorithmParameterSpec;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.InvalidParameterSpecException;
import java.security.spec.KeySpec;

/**
 * The JCA of a phone below Android API 33: ECDSA P-256 but no Ed25519.
 *
 * <p>{@link #install()} takes the JDK's SunEC provider (which offers both) out of the list and
 * puts in its place one that offers only {@code KeyFactory.EC}, {@code
 * AlgorithmParameters.EC} and {@code Signature.SHA256withECDSA}, each handing the work to SunEC's own objects. {@link #restore()}
 * puts SunEC back. Test-only.
 */
public final class WithoutEd25519 {
  private static Provider sunEc;
  private static int position;

  private WithoutEd25519() {}

  public static synchronized void install() {
    Provider[] all = Security.getProviders();
    for (int i = 0; i < all.length; i++) {
      if (all[i].getName().equals("SunEC")) {
        sunEc = all[i];
        position = i + 1;
      }
    }
    Security.removeProvider("SunEC");
    Security.insertProviderAt(new EcOnly(sunEc), position);
  }

  public static synchronized void restore() {
    Security.removeProvider("TestEcOnly");
    Security.insertProviderAt(sunEc, position);
  }

  private static final class EcOnly extends Provider {
    private static final long serialVersionUID = 1L;

    EcOnly(Provider sunEc) {
      super("TestEcOnly", "1", "P-256 through SunEC, and no Ed25519");
      final Provider delegate = sunEc;
      putService(new Service(this, "KeyFactory", "EC", "none", null, null) {
        @Override
        public Object newInstance(Object param) throws NoSuchAlgorithmException {
          return new Factory(KeyFactory.getInstance("EC", delegate));
        }
      });
      putService(new Service(this, "AlgorithmParameters", "EC", "none", null, null) {
        @Override
        public Object newInstance(Object param) throws NoSuchAlgorithmException {
          return new Params(AlgorithmParameters.getInstance("EC", delegate));
        }
      });
      putService(new Service(this, "Signature", "SHA256withECDSA", "none", null, null) {
        @Override
        public Object newInstance(Object param) throws NoSuchAlgorithmException {
          return new Verifier(Signature.getInstance("SHA256withECDSA", delegate));
        }

        @Override
        public boolean supportsParameter(Object key) {
          return true;
        }
      });
    }
  }

  private static final class Factory extends KeyFactorySpi {
    private final KeyFactory inner;

    Factory(KeyFactory inner) {
      this.inner = inner;
    }

    @Override
    protected PublicKey engineGeneratePublic(KeySpec spec) throws InvalidKeySpecException {
      return inner.generatePublic(spec);
    }

    @Override
    protected PrivateKey engineGeneratePrivate(KeySpec spec) throws InvalidKeySpecException {
      return inner.generatePrivate(spec);
    }

    @Override
    protected <T extends KeySpec> T engineGetKeySpec(Key key, Class<T> type)
        throws InvalidKeySpecException {
      return inner.getKeySpec(key, type);
    }

    @Override
    protected Key engineTranslateKey(Key key) throws InvalidKeyException {
      return inner.translateKey(key);
    }
  }

  private static final class Params extends AlgorithmParametersSpi {
    private final AlgorithmParameters inner;

    Params(AlgorithmParameters inner) {
      this.inner = inner;
    }

    @Override
    protected void engineInit(AlgorithmParameterSpec spec) throws InvalidParameterSpecException {
      inner.init(spec);
    }

    @Override
    protected void engineInit(byte[] params) throws IOException {
      inner.init(params);
    }

    @Override
    protected void engineInit(byte[] params, String format) throws IOException {
      inner.init(params, format);
    }

    @Override
    protected <T extends AlgorithmParameterSpec> T engineGetParameterSpec(Class<T> type)
        throws InvalidParameterSpecException {
      return inner.getParameterSpec(type);
    }

    @Override
    protected byte[] engineGetEncoded() throws IOException {
      return inner.getEncoded();
    }

    @Override
    protected byte[] engineGetEncoded(String format) throws IOException {
      return inner.getEncoded(format);
    }

    @Override
    protected String engineToString() {
      return inner.toString();
    }
  }

  private static final class Verifier extends SignatureSpi {
    private final Signature inner;

    Verifier(Signature inner) {
      this.inner = inner;
    }

    @Override
    protected void engineInitVerify(PublicKey key) throws InvalidKeyException {
      inner.initVerify(key);
    }

    @Override
    protected void engineInitSign(PrivateKey key) throws InvalidKeyException {
      inner.initSign(key);
    }

    @Override
    protected void engineUpdate(byte b) throws SignatureException {
      inner.update(b);
    }

    @Override
    protected void engineUpdate(byte[] b, int off, int len) throws SignatureException {
      inner.update(b, off, len);
    }

    @Override
    protected byte[] engineSign() throws SignatureException {
      return inner.sign();
    }

    @Override
    protected boolean engineVerify(byte[] sig) throws SignatureException {
      return inner.verify(sig);
    }

    @Override
    @Deprecated
    protected void engineSetParameter(String param, Object value) {
      throw new InvalidParameterException("no parameters");
    }

    @Override
    @Deprecated
    protected Object engineGetParameter(String param) {
      throw new InvalidParameterException("no parameters");
    }
  }
}
