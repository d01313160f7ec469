<?xml version="1.0" encoding="UTF-8"?>
<!-- Alcohol sale permit application (urn:hub:wzor:zezwolenie-alkoholowe:1, already valid
     against its schema) → the alcohol permits register's entry
     (urn:hub:legacy:alkohol:wniosek:1): one Zezwolenie per category asked for, with the
     statutory description of the category; addresses as single lines. -->
<xsl:stylesheet version="1.0"
                xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:z="urn:hub:wzor:zezwolenie-alkoholowe:1"
                xmlns:alk="urn:hub:legacy:alkohol:wniosek:1"
                exclude-result-prefixes="z">
  <xsl:include href="adres-w-linii.xsl"/>
  <xsl:output method="xml" encoding="UTF-8"/>

  <xsl:template match="/z:Wniosek">
    <alk:WpisWniosku gmina="{normalize-space(z:Organ/@teryt)}">
      <alk:Organ><xsl:value-of select="normalize-space(z:Organ)"/></alk:Organ>
      <alk:DataWplywu><xsl:value-of select="z:DataZlozenia"/></alk:DataWplywu>
      <xsl:apply-templates select="@rodzajSprzedazy"/>
      <xsl:apply-templates select="z:Przedsiebiorca"/>
      <xsl:apply-templates select="z:PunktSprzedazy"/>
      <alk:Zezwolenia liczba="{count(z:Kategorie/z:Kategoria)}">
        <xsl:apply-templates select="z:Kategorie/z:Kategoria"/>
      </alk:Zezwolenia>
    </alk:WpisWniosku>
  </xsl:template>

  <xsl:template match="@rodzajSprzedazy[. = 'poza-miejscem-sprzedazy']">
    <alk:RodzajSprzedazy kod="D">przeznaczone do spożycia poza miejscem sprzedaży</alk:RodzajSprzedazy>
  </xsl:template>
  <xsl:template match="@rodzajSprzedazy[. = 'w-miejscu-sprzedazy']">
    <alk:RodzajSprzedazy kod="G">przeznaczone do spożycia w miejscu sprzedaży</alk:RodzajSprzedazy>
  </xsl:template>

  <xsl:template match="z:Przedsiebiorca">
    <alk:Przedsiebiorca nip="{z:NIP}">
      <xsl:choose>
        <xsl:when test="z:KRS">
          <xsl:attribute name="rejestr">KRS</xsl:attribute>
          <xsl:attribute name="krs"><xsl:value-of select="z:KRS"/></xsl:attribute>
        </xsl:when>
        <xsl:otherwise>
          <xsl:attribute name="rejestr">CEIDG</xsl:attribute>
        </xsl:otherwise>
      </xsl:choose>
      <alk:Nazwa><xsl:value-of select="normalize-space(z:Nazwa)"/></alk:Nazwa>
      <alk:Siedziba>
        <xsl:call-template name="adres-w-linii">
          <xsl:with-param name="adres" select="z:Siedziba"/>
        </xsl:call-template>
      </alk:Siedziba>
      <xsl:if test="z:Pelnomocnik">
        <alk:Pelnomocnik><xsl:value-of select="normalize-space(z:Pelnomocnik)"/></alk:Pelnomocnik>
      </xsl:if>
    </alk:Przedsiebiorca>
  </xsl:template>

  <xsl:template match="z:PunktSprzedazy">
    <alk:Punkt>
      <alk:Nazwa><xsl:value-of select="normalize-space(z:Nazwa)"/></alk:Nazwa>
      <alk:Adres>
        <xsl:call-template name="adres-w-linii">
          <xsl:with-param name="adres" select="z:Adres"/>
        </xsl:call-template>
      </alk:Adres>
      <alk:Miejscowosc><xsl:value-of select="normalize-space(z:Adres/z:Miejscowosc)"/></alk:Miejscowosc>
      <xsl:if test="z:Magazyn">
        <alk:Magazyn>
          <xsl:call-template name="adres-w-linii">
            <xsl:with-param name="adres" select="z:Magazyn"/>
          </xsl:call-template>
        </alk:Magazyn>
      </xsl:if>
    </alk:Punkt>
  </xsl:template>

  <xsl:template match="z:Kategoria">
    <alk:Zezwolenie kategoria="{.}" od="{/z:Wniosek/z:Okres/z:Od}" do="{/z:Wniosek/z:Okres/z:Do}">
      <xsl:choose>
        <xsl:when test=". = 'A'">do 4,5% zawartości alkoholu oraz piwo</xsl:when>
        <xsl:when test=". = 'B'">powyżej 4,5% do 18% zawartości alkoholu (z wyjątkiem piwa)</xsl:when>
        <xsl:otherwise>powyżej 18% zawartości alkoholu</xsl:otherwise>
      </xsl:choose>
    </alk:Zezwolenie>
  </xsl:template>
</xsl:stylesheet>
